"""Built-in strategies, found by defai as plugins."""
