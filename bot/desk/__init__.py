"""The desk: the district center's web view of requests, for community, street and district admins."""
