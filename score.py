"""Score files of texts with a model directory into Parquet parts (``python score.py --help``).

python score.py --model constellation_one_text 'posts/*.parquet' --output scored/
python score.py --model constellation_one_text s3://bucket/chats/*.jsonl --id-column message_id --output s3://bucket/scored/ --engine ray
"""

import sys

from cockatoo_ml.bulk.run import main
from cockatoo_ml.cli import run_main

if __name__ == "__main__":
    sys.exit(run_main(main))
