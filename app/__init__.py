"""DD Studio's Streamlit UI: the entry point (main.py) and shared pieces. It only drives ddcore."""
