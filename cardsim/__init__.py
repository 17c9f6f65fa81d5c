"""The card side: a virtual My Number card answering APDU bytes."""
