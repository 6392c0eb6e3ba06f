"""HTML pages, one module per area. Each view calls the same service functions as the API; none decides
permissions itself: a NotFound from a service becomes 404, a Forbidden 403, an Invalid a message at
the field it names."""
