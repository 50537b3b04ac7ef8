"""The page's viewer: a stored image rendered from its file at full bit depth at any window and size
(``medsearch.viewer.pixels``), the slices of its series in order with their scores for a query
(``medsearch.viewer.series``), and the service the HTTP routes call (``medsearch.viewer.service``)."""
