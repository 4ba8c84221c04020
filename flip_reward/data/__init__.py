"""Datasets in and out: loading rows from files or the hub with errors that name the row, the RLVR schema that
open-instruct reads, the dataset mixes of local training, per-sample traces, and output files that a failure never
leaves half-written."""
