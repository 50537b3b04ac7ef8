"""Embedding on many machines with Ray Data (extra ``medsearch[ray]``).

Ray tasks read and decode files, an actor pool embeds them (the model loaded once per actor), and the
vectors either stream back to the one writer in the driver, which assigns the ids (``executor``), or are
written as Parquet shards to a shared folder or object store and loaded afterwards (``shards``).
"""
