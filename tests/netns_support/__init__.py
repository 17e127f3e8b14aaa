"""A test cluster of Linux network namespaces: a broker host, console hosts and an operator host.

``net`` builds the namespaces, veth pairs and the bridge (and takes them down again);
``cluster`` runs the broker, one ``sentry-console serve`` per worker host and the operator's
``watch`` in them; ``views`` follows what each console and the operator see.
"""
