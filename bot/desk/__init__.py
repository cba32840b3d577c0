"""The district center's desk: web pages for dispatching and tracking, and Open311 for partner apps."""
