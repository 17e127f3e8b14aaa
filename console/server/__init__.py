"""The supervisor server: one process per state directory owns the programs; clients attach.

Nothing here imports textual: the server runs under systemd or a container with no screen.
"""
