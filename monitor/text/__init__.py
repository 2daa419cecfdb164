"""Text in and out: YAML read with `file:line:col` positions, the units people write (`5s`,
`32MiB`, `30/m`), and secrets removed, in every shape, from every text that leaves callmon."""
