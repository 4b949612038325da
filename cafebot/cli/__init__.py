"""The ``cafebot`` command line: ``main`` builds the parser; one module per group of
subcommands holds their handlers.

The top of the stack: it may import every part, and no part imports it. Heavy
modules are imported lazily, inside each subcommand.
"""
