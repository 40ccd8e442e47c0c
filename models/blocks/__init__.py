"""One Pyomo block builder per asset type; each adds its variables and constraints to the model
and registers its node injections, cost terms and slacks with the :class:`Assembly`."""
