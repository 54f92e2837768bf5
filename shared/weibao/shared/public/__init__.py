"""Public messages: what one service tells the others, versioned.

Only these cross service boundaries; each service's domain events stay private (they
travel on `<service>.private.<Type>` as part of the log's exact copy, and no other
service reads them). Readers ignore fields they do not know; a breaking change is a new
`SCHEMA` version of the message."""
