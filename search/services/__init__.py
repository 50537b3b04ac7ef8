"""Services over a ``medsearch.context.Context``: querying (``querying.QueryService``, with the ranking
strategies of ``ranking``) and maintenance (``maintenance``). ``medsearch.api.Medsearch`` composes them."""
