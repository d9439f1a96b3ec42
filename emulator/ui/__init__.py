"""The dashboard: view data (views.py), HTML (render.py, templates/), static assets (static/), HAR."""
