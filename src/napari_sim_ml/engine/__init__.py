"""The reconstruction engine: numpy/scipy (torch only in the PINN module), no Qt."""
