"""The library card (図書館カード): a card's authentication certificate linked to a library user
number, and the circulation rules of Japanese public libraries (municipal-apps.md §2)."""
