"""The floor everything stands on: the stack model, image references, errors, units, inputs
and the source root. It imports nothing else of the project's."""
