"""A DICOMweb server (a PACS) as a source beside folders: QIDO-RS to find instances, WADO-RS to fetch them,
a cursor per source for incremental sync. Modules: ``source`` (the URL, credentials, errors), ``client``
(HTTP with retries), ``multipart``, ``query`` (QIDO filters), ``sync`` (what to fetch and remove),
``fetch`` (bounded concurrent downloads), ``run`` (composes them with the indexing pipeline)."""
