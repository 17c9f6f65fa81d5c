"""Municipal card applications (host side), built on the reader layer and the clients."""
