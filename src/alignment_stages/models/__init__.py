"""Model artifacts and the base policy: plain modules, no Kedro."""
