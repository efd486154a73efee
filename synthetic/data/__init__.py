"""Shipped reference data (CSV) for the simulator; see synthetic.reference."""
