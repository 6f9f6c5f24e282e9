"""The classroom: who is using CNN Lab (users and roles), how they sign in, and the class's rules.

Nothing here imports TensorFlow or streamlit; `cnnlab.ui` turns a sign-in into a `User`, and
`cnnlab.runs` enforces what that user may see and change.
"""
