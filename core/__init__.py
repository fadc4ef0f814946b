"""RAG Eval Studio's engine: plain Python, no Streamlit. See ARCHITECTURE in the README."""
