"""Datasets in and out: loading rows from files or the hub with errors that name the row, the RLVR schema that
open-instruct reads, and the dataset mixes of local training."""
