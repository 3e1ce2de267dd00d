"""Where decisions become trades: the Broker protocol (ccxt's unified API) and the venues."""
