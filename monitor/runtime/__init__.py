"""The running daemon: the composition root that builds and starts every part, the supervisor
of its loops, leadership among replicas, and the daemon's own small loops."""
