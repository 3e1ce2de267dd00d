"""Built-in tools, found by defai as plugins."""
