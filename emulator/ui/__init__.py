"""The dashboard: view data (views.py), HTML rendering (render.py, templates/), static assets (static/), HAR."""
