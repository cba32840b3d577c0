"""gridbot: residents' micro-requests routed through grid governance."""
