__version__ = "0.1.0"
# The platform API revision this SDK speaks, sent as ``SDK-Version`` (the official SDK release
# whose wire format CONTRACT.md records).
API_VERSION = "1.5.2"
