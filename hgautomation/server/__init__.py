"""The Try server: the code deploy zips for Lambda (standard library and boto3 only)."""
