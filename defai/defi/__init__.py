"""Pure protocol maths (Uniswap v3, Aave v3, MEV, sizing): numbers in, numbers out, no I/O."""
