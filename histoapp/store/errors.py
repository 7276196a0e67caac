"""The store's one exception type."""


class StoreError(ValueError):
    """Bad input to the store, with a message fit to show a user."""
