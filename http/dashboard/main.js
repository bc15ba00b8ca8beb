// Entry point of the dashboard page (index.html loads it). The handle stays on window for the console and
// for tests: squallDashboard.stop() ends the refresh timer and the live feed.
import { mount } from './app.js';

window.squallDashboard = mount(document, window);
