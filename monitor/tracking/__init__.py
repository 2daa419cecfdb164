"""From what a provider said to what callmon decided: the pure diff of calls into events, the
pipeline step that runs the rules and commits it all in one transaction, kept pushes applied
the same way, and the `--record` files with their replay."""
