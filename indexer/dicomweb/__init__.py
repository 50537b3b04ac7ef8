"""A DICOMweb server (a PACS) as a source beside folders: QIDO-RS to find instances, WADO-RS to fetch them,
a cursor per source for incremental sync. Modules: ``source`` (the URL, stored paths, errors),
``credentials`` (which source gets which credentials), ``http`` (requests with a deadline, size caps and
retries), ``settings`` (those bounds from the environment), ``client`` (QIDO-RS, WADO-RS, Orthanc's change
feed), ``multipart``, ``query`` (QIDO filters, instance identity), ``sync`` (what to fetch and remove),
``fetch`` (bounded concurrent downloads), ``run`` (composes them with the indexing pipeline, the removal
guard), ``verify`` (``check`` of stored instances against their source)."""
