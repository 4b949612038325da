"""The application and the dispatcher: a message becomes one command run.

``App`` wires the settings, the database and the clock; ``Bot`` parses a message,
checks permissions and runs its command in one unit of work. Importing it imports
the feature modules, so that their commands are registered. It may import the rules
and everything below them; not the edge or the command line.
"""
