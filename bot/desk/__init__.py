"""The district center's desk: a web view of the figures and requests for staff at a big screen."""
