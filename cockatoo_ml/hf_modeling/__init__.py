"""Model code that travels inside model directories.

``save_pretrained`` copies each module here verbatim into the directories it writes, where transformers imports
it on its own (``trust_remote_code=True``): these modules import only torch, transformers and the standard
library, never ``cockatoo_ml`` (tests/hf_modeling checks it).
"""
