"""Replicas: S3-compatible buckets that hold a copy of every artifact (cross-region DR).

client.py (the boto3 client and object keys), upload.py (streaming, optionally age-encrypted
upload), listing.py (what a bucket holds), prune.py (retention on the bucket), fetch.py
(download, check, decrypt: an artifact the engines restore like a local one).
"""
