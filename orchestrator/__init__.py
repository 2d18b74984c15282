"""simrs: the hospital SIMRS downtime SOP, automated."""
