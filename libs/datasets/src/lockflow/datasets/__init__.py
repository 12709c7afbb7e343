"""The pipeline's datasets, as every stage reads them.

`canonical`: the five Arrow types a dataset's columns have and how a table is described (schema,
examples, sample rows); `parquet`: a dataset file read one row group at a time; `sampling`: the
same seeded sample of rows in memory or from disk; `columns`: the analytic kind of a column read
into pandas, and number hygiene. Shared by ingest, quality, analytics and insights, so none of them
imports another.
"""
