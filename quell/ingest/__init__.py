"""Results from other tools: the Soda Cloud protocol Soda Core speaks, and dbt and Great Expectations imports."""
