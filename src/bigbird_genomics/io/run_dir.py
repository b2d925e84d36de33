"""Names of files in a run directory that more than one stage uses: training writes them,
the sweep summary and the report read them."""

# A grid-sweep job whose config failed its checks writes its error here and the sweep goes on.
FAILED_RUN_FILE = "failed.txt"
