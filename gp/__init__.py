"""GlobalPlatform-style card management shared by the card and the host (wire formats, crypto)."""
