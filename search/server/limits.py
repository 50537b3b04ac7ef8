"""The server's default decode limit (uploads and thumbnails), in a module of its own so that
``medsearch serve --help`` can show it without importing the server (FastAPI, numpy)."""

SERVER_MAX_PIXELS = 64_000_000
"""Pixels an upload or a thumbnail may have by default (a 8000 x 8000 picture); larger ones are refused
unread. ``ServerSettings.max_upload_pixels`` (``serve --max-upload-pixels``) changes it for uploads."""
