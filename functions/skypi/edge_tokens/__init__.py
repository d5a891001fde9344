"""The CloudFront KeyValueStore that mirrors the token table for the edge function."""
