"""The district center's desk: web pages for community, street and district admins to dispatch and track
requests, and Open311 for partner apps."""
