"""The HTTP API and the web page: ``create_app(store_dir)`` builds the FastAPI app; ``medsearch serve`` runs
it with uvicorn."""
