"""Ingestion: every source (CSV, JSON payload, MQTT) -> record frame -> one validation and
storage path (:func:`grid.ingest.pipeline.ingest`) -> :class:`grid.ingest.report.IngestReport`."""
