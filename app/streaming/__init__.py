"""`stream_tiles`: a dashboard's tiles over Server-Sent Events, each sent the moment it is rendered."""
