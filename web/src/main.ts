// Entry point of the page: sets up its Trusted Types policy, then mounts the app.
import './lib/trusted-types.ts';
import { mount } from 'svelte';
import App from './App.svelte';
import './app.css';

mount(App, { target: document.getElementById('app')! });
